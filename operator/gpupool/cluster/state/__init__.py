"""The watch-fed cache of every kind gpupool reads, what each kind is parsed into, and each
queue's decayed usage kept between cycles."""
