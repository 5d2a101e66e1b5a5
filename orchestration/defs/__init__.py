"""One module per pipeline stage; loaded by `load_from_defs_folder`."""
