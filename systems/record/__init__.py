"""Recording and replaying segmentation sessions (file format, recorder, replayer, video)."""
