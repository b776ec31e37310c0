"""Compile pipelines against plates and run them well by well."""
