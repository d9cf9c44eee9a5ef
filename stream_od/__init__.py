"""stream-od: streaming anomaly detection for network traffic on Apache Kafka.

The pipeline reads top to bottom: records (``records``) -> features (``features``)
-> detector (``detector``) -> alerts (``alerts``).  The Kafka loop (``worker``) knows
nothing about neural networks; the detector knows nothing about Kafka.
"""

__version__ = "0.1.0"
