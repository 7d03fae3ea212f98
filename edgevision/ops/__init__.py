"""Geometry: the only place that converts, measures or compares boxes and points.

``boxes`` (numpy or torch, torch-free import), ``iou`` and ``grid`` (torch), ``nms`` (torch).
Import from the module that holds a function; this face imports nothing, so the data layer
can use ``ops.boxes`` where torch is absent.
"""
