"""Data I/O for the runtime: the user's datasets, the artifacts jobs hand each other, and the order in
which trainers visit them.

- readers: `sources.load_prompts/load_videos/load_pairs/load_labels` dispatch on a job config's source
  spec; `prompts`, `videoset`, `pairs`, `labels` read the files themselves; `video` decodes with OpenCV.
- writers (atomic): `write_video_set`, `write_pairs` / `put_pairs`, `write_labels` / `put_labels`,
  `video.write_video`, `gif.save_gif`.
- order: `sampling.ShuffledCursor`, `mixture.MixtureCursor` (resumable, rank-sharded).
Every problem with the user's data raises `DataError` naming the file and line."""
from .errors import DataError
from .gif import grid, save_gif
from .labels import LabelSet, put_labels, read_labels, read_labels_jsonl, write_labels
from .mixture import MixtureCursor
from .pairs import PairSet, concat_pairs, put_pairs, read_pairs, read_pairs_jsonl, write_pairs
from .paths import resolve_path
from .prompts import read_prompts
from .sampling import Permutation, ShuffledCursor, shard
from .sources import load_labels, load_pairs, load_prompts, load_videos
from .video import read_video, write_video
from .videoset import VideoSet, index_captioned_videos, read_captioned_videos, read_video_set, write_video_set

__all__ = ["DataError", "grid", "save_gif", "LabelSet", "put_labels", "read_labels", "read_labels_jsonl",
           "write_labels", "MixtureCursor", "PairSet", "concat_pairs", "put_pairs", "read_pairs", "read_pairs_jsonl",
           "write_pairs", "resolve_path", "read_prompts", "Permutation", "ShuffledCursor", "shard", "load_labels",
           "load_pairs", "load_prompts", "load_videos", "read_video", "write_video", "VideoSet",
           "index_captioned_videos", "read_captioned_videos", "read_video_set", "write_video_set"]
