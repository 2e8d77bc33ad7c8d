"""Shared platform plumbing for the three pipelines: typed settings, S3, Redis and Spark
connections, and the local service stack.

The pipelines never import each other; what they share (configuration from the
environment, how to reach storage) lives here so that it is written once.
"""
