#!/usr/bin/env bash
# Fetch the jars that give Spark s3a:// (hadoop-aws matching pyspark's Hadoop, and the AWS
# SDK bundle it needs) from Maven Central into a cache folder outside the clone.
# Maven checks each download against Central's .sha1 (--strict-checksums: a mismatch fails),
# then every jar is checked against the SHA-256 sums committed in spark-jars.sha256 (the
# jars Central served when the sums were recorded, their .sha1 confirmed): a jar changed
# upstream, or on the way, stops the install instead of running inside Spark.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${SPARK_JARS_DIR:-$HOME/.cache/fraud-feature-store/jars}"
verify() { (cd "$dest" && sha256sum --quiet --check "$here/spark-jars.sha256"); }
if ls "$dest"/hadoop-aws-*.jar >/dev/null 2>&1 && ls "$dest"/bundle-*.jar >/dev/null 2>&1; then
  verify
  echo "Spark s3a jars present and verified in $dest"
  exit 0
fi
mkdir -p "$dest"
echo "Fetching hadoop-aws and the AWS SDK bundle into $dest (about 650 MB, once)..."
mvn -q -B --strict-checksums -f "$here/spark-jars.pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$dest"
verify
ls "$dest"
