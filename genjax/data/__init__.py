"""Input pipelines: image datasets through TFDS (in memory or streamed), sequences, tables."""
