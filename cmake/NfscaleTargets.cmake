# Helpers that define nfscale's per-area component libraries and test programs.
# Each area src/nfscale/<area>/ is one static component (nfscale_<area>); the umbrella target `nfscale`
# links them all. Sources are globbed, so adding a file pair needs no CMake edit.

set(NFSCALE_WARNINGS -Wall -Wextra -Wno-unused-parameter)

# A tiny target that owns the precompiled LibTorch header; every torch-using target reuses it.
function(nfscale_pch_owner)
  add_library(nfscale_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cpp)
  # OpenMP (when LibTorch uses it) on the PCH owner: every target, and the precompiled header itself, get -fopenmp.
  target_link_libraries(nfscale_pch PUBLIC ${TORCH_LIBRARIES} ${NFSCALE_OPENMP})
  target_compile_options(nfscale_pch PUBLIC ${NFSCALE_WARNINGS})
  target_include_directories(nfscale_pch PUBLIC ${PROJECT_SOURCE_DIR}/src)
  if(NFSCALE_PCH)
    target_precompile_headers(nfscale_pch PRIVATE <torch/torch.h>)
  endif()
endfunction()

function(nfscale_use_pch target)
  if(NFSCALE_PCH)
    target_precompile_headers(${target} REUSE_FROM nfscale_pch)
  endif()
endfunction()

# Unity (jumbo) builds: loading the precompiled LibTorch header costs ~8-15 s per translation unit on the 2-core CI
# machine, more than most files take to compile, so a target's sources are compiled NFSCALE_UNITY_BATCH at a time.
# Files that cannot share a translation unit are compiled alone: those with `#pragma GCC target` (the per-ISA
# kernels; the pragma would leak into the files after them) and any file that says `NFSCALE_NO_UNITY` in a comment.
# A source given per-file compile properties sets SKIP_UNITY_BUILD_INCLUSION where it sets them (src/CMakeLists.txt).
function(nfscale_unity target)
  if(NOT NFSCALE_UNITY)
    return()
  endif()
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${NFSCALE_UNITY_BATCH})
  get_target_property(_srcs ${target} SOURCES)
  foreach(_src ${_srcs})
    file(STRINGS ${_src} _alone REGEX "#pragma GCC target|NFSCALE_NO_UNITY")
    if(_alone)
      set_source_files_properties(${_src} PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
    endif()
  endforeach()
endfunction()

# nfscale_area(NAME area DEPS other_targets...): one static library per area from src/nfscale/<area>/**.cpp
# (an area may hold subfolders, e.g. models/nfnet/ and models/vit/ for the two model families).
function(nfscale_area area)
  cmake_parse_arguments(A "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE _srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/nfscale/${area}/*.cpp)
  if(NOT _srcs)
    set(_srcs ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cpp)
  endif()
  add_library(nfscale_${area} STATIC ${_srcs})
  target_include_directories(nfscale_${area} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(nfscale_${area} PUBLIC nfscale_pch ${A_DEPS})
  nfscale_use_pch(nfscale_${area})
  nfscale_unity(nfscale_${area})
endfunction()

# nfscale_tests(area DEPS libs...): one GoogleTest program per area from tests/<area>/**.cpp (subfolders mirror src).
function(nfscale_tests area)
  cmake_parse_arguments(A "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE _srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/${area}/*.cpp)
  if(NOT _srcs)
    return()
  endif()
  add_executable(test_${area} ${_srcs})
  target_link_libraries(test_${area} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_compile_definitions(test_${area} PRIVATE NFSCALE_BINARY_DIR="${PROJECT_BINARY_DIR}"
                                                  NFSCALE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  nfscale_use_pch(test_${area})
  nfscale_unity(test_${area})
  # Tests that drive the real CLI (kill -9 / resume, sweeps) find it at ${PROJECT_BINARY_DIR}/bin/nfscale.
  if(TARGET nfscale_cli)
    add_dependencies(test_${area} nfscale_cli)
  endif()
  gtest_discover_tests(test_${area} DISCOVERY_TIMEOUT 120 PROPERTIES LABELS ${area})
endfunction()
