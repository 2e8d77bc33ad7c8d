"""The application on top of the three pipelines: the local demo of the whole loop and the
chain of DAG runs through Airflow's API. It is the one place that uses every pipeline, so
it stands above them; nothing imports it."""
