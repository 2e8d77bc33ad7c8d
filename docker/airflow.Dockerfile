# syntax=docker/dockerfile:1.7
# The Airflow image: apiserver, scheduler, dag-processor and triggerer all run it, and
# with LocalExecutor the scheduler runs the pipelines' tasks, Spark's driver included.
#
#   docker build -f docker/airflow.Dockerfile -t fraud-feature-store/airflow:0.1.0 .
#
# Stage 1 fetches Spark's s3a jars (hadoop-aws 3.5.0, matching pyspark 4.3.0's Hadoop, and
# the AWS SDK bundle) with Maven from scripts/spark-jars.pom.xml, the same list the local
# stack uses. Stage 2 adds a JRE and the jars to the official Airflow image and installs
# the project at the versions of requirements/lock.txt. No secret is baked in.

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
# Pinned by the digest of its multi-architecture index. The Airflow image stays pinned by
# its release tag only: no digest of apache/airflow:3.3.2-python3.11 could be confirmed
# without pulling it; add it with `docker buildx imagetools inspect` before release.
ARG MAVEN_IMAGE=maven:3.9.11-eclipse-temurin-21@sha256:6fdc855a6ed81d288ca7ca37ac6ff5e9308b612485c0801d70b25a858c83d237

FROM ${MAVEN_IMAGE} AS spark-jars
WORKDIR /build
COPY scripts/spark-jars.pom.xml ./pom.xml
COPY scripts/spark-jars.sha256 ./spark-jars.sha256
RUN --mount=type=cache,target=/root/.m2 \
    mvn --batch-mode --quiet --strict-checksums -f pom.xml dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory=/jars \
 && (cd /jars && sha256sum --check --quiet /build/spark-jars.sha256)


FROM ${AIRFLOW_IMAGE} AS airflow

# hadolint ignore=DL3066
USER root
# Spark 4 runs on Java 17 or 21: the distribution's default JRE is one of them.
# /usr/share/man/man1 must exist for the JRE's post-install step on slim Debian images.
# psql runs docker/postgres/init-databases.sh (the db-init task on AWS). Debian package
# versions are fixed by the pinned base image (DL3008).
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install --yes --no-install-recommends default-jre-headless postgresql-client \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/default-java \
    SPARK_JARS_DIR=/opt/spark-jars
COPY --from=spark-jars /jars/ /opt/spark-jars/

# The official image installs Python packages as the airflow user (into ~/.local).
# hadolint ignore=DL3066
USER airflow
COPY --chown=airflow:root requirements/lock.txt /opt/fraud/requirements/lock.txt
# The lock pins apache-airflow==3.3.2 like the base image, so Airflow itself is unchanged.
# pip check reports (without failing the build) conflicts with providers that ship in the
# base image but are not part of the lock.
RUN pip install --no-cache-dir --require-hashes --requirement /opt/fraud/requirements/lock.txt \
 && { pip check || echo "pip check: conflicts above involve packages outside the lock"; }

COPY --chown=airflow:root pyproject.toml README.md /opt/fraud/
COPY --chown=airflow:root fraud_platform /opt/fraud/fraud_platform
COPY --chown=airflow:root feature_pipeline /opt/fraud/feature_pipeline
COPY --chown=airflow:root training_pipeline /opt/fraud/training_pipeline
COPY --chown=airflow:root inference_pipeline /opt/fraud/inference_pipeline
RUN pip install --no-cache-dir --no-deps /opt/fraud \
 && python -c "import fraud_platform, feature_pipeline, training_pipeline, inference_pipeline" \
 && test -d "${SPARK_JARS_DIR}" && java -version

# DAGs and the Feast repo are baked in so the image runs as is on ECS; the compose stack
# mounts the working copies over them.
COPY --chown=airflow:root pipelines /opt/airflow/dags
COPY --chown=airflow:root feature_repo /opt/airflow/feature_repo
COPY --chown=airflow:root docker/postgres/init-databases.sh /opt/fraud/scripts/init-databases.sh
