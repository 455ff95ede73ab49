"""Readers and preprocessing: tables (CSV, Parquet), arrays (.npy, .npz)."""
