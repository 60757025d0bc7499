//! Readers for trained tables: NumPy `.npy`/`.npz`, scipy sparse `.npz`, safetensors.
