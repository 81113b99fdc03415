// modal solver: implemented in lanczos.cpp
