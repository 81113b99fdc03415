// HDF5 layer: implemented in hdf5.cpp
