#!/usr/bin/env python3
"""Reads an event-file directory with TensorBoard's own loader and prints what it found as JSON.

The second, optional reader of the TensorBoard tests: EventAccumulator (TensorBoard's legacy
loader, which checks both CRCs of every record and stops at the first bad or truncated one) for
scalars and histograms, and TensorBoard's data_compat migration, the step its histogram dashboards
go through, for the buckets as they are drawn (left edge, right edge, count). Needs the
`tensorboard` package; prints nothing to stdout when it cannot read.

    read_with_tensorboard.py DIR

Output: {"file_version", "scalars": {tag: [[wall_time, step, value], ...]},
"histograms": {tag: [{"wall_time", "step", "min", "max", "num", "sum", "sum_squares",
"bucket_limit", "bucket", "drawn": [[left, right, count], ...]}, ...]}}
"""
import json
import sys

from tensorboard import data_compat
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util


def drawn(tag, h):
    """The (left, right, count) buckets TensorBoard's histogram dashboards draw from this histogram."""
    value = summary_pb2.Summary.Value(tag=tag)
    for field in ("min", "max", "num", "sum", "sum_squares"):
        setattr(value.histo, field, getattr(h, field))
    value.histo.bucket_limit.extend(h.bucket_limit)
    value.histo.bucket.extend(h.bucket)
    return tensor_util.make_ndarray(data_compat.migrate_value(value).tensor).tolist()


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    everything = {kind: 0 for kind in (event_accumulator.SCALARS, event_accumulator.HISTOGRAMS,
                                       event_accumulator.COMPRESSED_HISTOGRAMS, event_accumulator.TENSORS)}
    acc = event_accumulator.EventAccumulator(argv[1], size_guidance=everything)
    acc.Reload()
    tags = acc.Tags()
    out = {"file_version": acc.file_version, "scalars": {}, "histograms": {}}
    for tag in tags[event_accumulator.SCALARS]:
        out["scalars"][tag] = [[s.wall_time, s.step, s.value] for s in acc.Scalars(tag)]
    for tag in tags[event_accumulator.HISTOGRAMS]:
        out["histograms"][tag] = [
            {"wall_time": e.wall_time, "step": e.step, "min": e.histogram_value.min, "max": e.histogram_value.max,
             "num": e.histogram_value.num, "sum": e.histogram_value.sum,
             "sum_squares": e.histogram_value.sum_squares, "bucket_limit": list(e.histogram_value.bucket_limit),
             "bucket": list(e.histogram_value.bucket), "drawn": drawn(tag, e.histogram_value)}
            for e in acc.Histograms(tag)]
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
