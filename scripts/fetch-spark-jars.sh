#!/usr/bin/env bash
# Fetch the jars that give Spark s3a:// (hadoop-aws matching pyspark's Hadoop, and the AWS
# SDK bundle it needs) from Maven Central into a cache folder outside the clone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${SPARK_JARS_DIR:-$HOME/.cache/fraud-feature-store/jars}"
if ls "$dest"/hadoop-aws-*.jar >/dev/null 2>&1 && ls "$dest"/bundle-*.jar >/dev/null 2>&1; then
  echo "Spark s3a jars present in $dest"
  exit 0
fi
mkdir -p "$dest"
echo "Fetching hadoop-aws and the AWS SDK bundle into $dest (about 650 MB, once)..."
mvn -q -B -f "$here/spark-jars.pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$dest"
ls "$dest"
