"""Side-by-side benchmarks: this project against gensim (compare_gensim.py), and the machine's matmul speed."""
