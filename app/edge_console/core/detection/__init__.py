"""Detection: the record every part exchanges, the ONNX detector and its decoders, matching and quality metrics.

    record.py         Detection, DetectionResult, Timings
    detector.py       one onnxruntime session; preprocessing and decoding from the model's metadata
    model_spec.py     what a model says about itself (classes, input, preprocessing, version)
    decoders.py       output layouts (YOLO families, SSD-style, ...) recognised from shapes
    preprocess.py     frame -> input tensor, boxes back to the frame
    onnx_runtime.py   the one place that imports onnxruntime: execution providers, sessions
    onnx_shape.py     is this file an ONNX model at all (cheap check)
    matching.py       pairing two detection lists and how far they agree
    comparison.py     device vs laptop on the same pixels
    metrics.py        mAP, precision/recall against ground truth
    model_library.py  the laptop's model library
    yolo_dataset.py   hard frames written as a YOLO dataset
"""
