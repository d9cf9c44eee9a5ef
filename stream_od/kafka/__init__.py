"""Thin, typed wrappers around confluent-kafka: client construction, topics, dead letters.

Nothing here knows about models; nothing outside this package builds librdkafka configs.
"""
