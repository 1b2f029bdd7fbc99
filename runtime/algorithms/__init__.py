"""The math of ALGORITHMS.md, one small pure function per formula (tensors in, tensors out).

Trainers compose these; they never re-derive a formula inline. Loss and log-prob arithmetic is fp32."""
