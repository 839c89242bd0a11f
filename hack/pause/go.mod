// The sandbox ("pause") process of the dev cluster's real node: gpupool's own, built here
// because no registry can be reached for the usual pause image; see gpupool/devcluster/images.py.
module gpupool.io/hack/pause

go 1.26.0
