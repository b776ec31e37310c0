"""Where results go: Parquet tables and an OME-Zarr plate of labels and images."""
