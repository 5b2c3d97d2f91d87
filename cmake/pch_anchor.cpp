// Anchor translation unit for the precompiled LibTorch header (see cmake/NfscaleTargets.cmake).
