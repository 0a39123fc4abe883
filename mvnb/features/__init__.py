"""The feature store: frozen musicnn and R(2+1)D-18 features of every segment, in cached views.

The encoders are frozen, so each 5 s segment is encoded once, in V views of a 3 s window, and
stored in `DATA_DIR/features/<key>/` (audio → musicnn, 1506-d `max_pool ‖ mean_pool`; video →
r2plus1d_18, 512-d). The package's rooms:

- `views`: how a segment is cut into its views (view 0 centred, the others random);
- `index`: what each segment's files hold (sizes, mtimes, sha256), and its fingerprint;
- `store`: the store on disk (meta.json, generations, shards, lock) and its readers;
- `pipeline`: decoding in DataLoader workers while the encoders run;
- `extract`: the encoders as the store uses them, and `extract_features`;
- `cli`: `python -m mvnb features`;
- `inspect`: the tables and plots of notebook 02.

The names others use are re-exported here, so `features.load_feature_pair(store)` and the
notebooks' `features.provenance_table(store)` need no submodule.
"""

from mvnb.features.extract import audio_encoder, extract_features, video_encoder
from mvnb.features.inspect import (
    feature_statistics,
    genre_taggram,
    plot_taggram,
    plot_view_similarities,
    provenance_table,
    taggram_from_pooled,
    timing_table,
    view_similarities,
)
from mvnb.features.pipeline import SegmentInputs
from mvnb.features.store import (
    KEYS,
    Encoder,
    FeatureStoreMismatch,
    FeatureStoreStale,
    check_views_aligned,
    feature_dir,
    feature_keys,
    load_feature_pair,
    load_features,
    read_meta,
)
from mvnb.features.views import View, ViewSpec, segment_views, view_clips, view_windows

__all__ = [
    "KEYS",
    "Encoder",
    "FeatureStoreMismatch",
    "FeatureStoreStale",
    "SegmentInputs",
    "View",
    "ViewSpec",
    "audio_encoder",
    "check_views_aligned",
    "extract_features",
    "feature_dir",
    "feature_keys",
    "feature_statistics",
    "genre_taggram",
    "load_feature_pair",
    "load_features",
    "plot_taggram",
    "plot_view_similarities",
    "provenance_table",
    "read_meta",
    "segment_views",
    "taggram_from_pooled",
    "timing_table",
    "video_encoder",
    "view_clips",
    "view_similarities",
    "view_windows",
]
