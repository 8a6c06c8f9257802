"""What knows the Keras backend or the hardware, in one place: the backend and its devices, the dtype
policy, data parallelism, how `fit` is fed, JAX's bfloat16 products and compilation cache on a CPU, and
the allocator. The layers above are written against `keras.ops` and NumPy."""
