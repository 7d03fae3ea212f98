"""ONNX files for every task (``onnx``), decode + NMS in the graph (``nms``), numerical checks
(``parity``) and INT8 (``quantize``). What to export per task lives in ``tasks/<task>/export.py``;
the runtime that runs the files is torch-free (``edgevision.runtime``). Import from the module
that holds a name."""
