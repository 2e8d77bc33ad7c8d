"""The local stack: real Redis, S3 and PostgreSQL servers run as processes, no Docker.

``fraud-stack up`` starts them bound to 127.0.0.1 with data, logs and pid files under one
folder (``.local/`` by default) and writes the environment the pipelines read to
``.local/stack.env``; ``fraud-stack down`` stops exactly what ``up`` started.
"""
