"""Head codecs: how a head family's raw output becomes boxes and scores (and back, for families
that regress offsets against anchors or priors). One family per file; a head names its codec
(``head.codec(strides)``), and the checkpoint and ONNX metadata store the family name so the
numpy twin in ``runtime/codecs/`` decodes the exported file the same way."""
