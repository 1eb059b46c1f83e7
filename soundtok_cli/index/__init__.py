"""The search index: FAISS over the segment vectors of embeddings stores, with metadata beside it.

An index is a directory (default: `location.default_index_path`)::

    CURRENT            small JSON naming the live generation: format version, generation number,
                       embedder attributes, index type and parameters (nprobe, measured recall),
                       counts; replaced atomically (temporary file, fsync, os.replace)
    LOCK               writers hold an exclusive flock on it for their whole read-modify-write
    gen-000007/        one immutable generation, written in full under a temporary name first:
      index.faiss        the FAISS index (ids are row numbers of vectors.npy)
      vectors.npy        (S, D) float16, every segment vector, so --append and --prune rebuild
                         without re-reading stores
      sources.npy        (S,) int32: the source file number of each segment (one hit per file)
      meta.sqlite        files (source, channel, content hash, ...) and segments (id -> file,
                         start, end), so a search fetches metadata rows only for its hits

Modules: `location` (where the default index lives), `layout` (CURRENT, generations, publishing),
`lock` (the writers' lock), `meta` (the sqlite metadata), `ann` (FAISS: exact or IVF, nprobe
tuning, GPU), `update` (build, --append, --prune), `search` (queries against a generation),
`ranking` (how files are ranked: the best moment and the file as a whole),
`queries` (text and example query vectors, checked against the index's embedder).
"""
