# Injected with -DCMAKE_PROJECT_INCLUDE=... when ezm_msgs is built against ROS 2 wheels in a venv.
#
# Why: the ROS 2 wheels' rosidl export files name include directories of the machine that built the
# wheels (e.g. /opt/python/cp311-cp311/include/python3.11 and its NumPy), and CMake's generate step
# rejects imported targets whose INTERFACE_INCLUDE_DIRECTORIES do not exist. The venv provides the
# same headers through its own Python, so the foreign entries are safe to drop. Doing it here keeps
# ezm_msgs/CMakeLists.txt a standard ament_cmake package that a ROS 2 workspace builds unchanged, and
# leaves the installed wheels untouched. Needs CMake >= 3.21 (IMPORTED_TARGETS, cmake_language DEFER).

cmake_minimum_required(VERSION 3.21)

function(_ezm_drop_missing_include_dirs)
  get_directory_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    set(_kept "")
    set(_dropped "")
    foreach(_dir IN LISTS _dirs)
      # Generator expressions are resolved later; only plain paths can be checked now.
      if(_dir MATCHES "\\$<" OR EXISTS "${_dir}")
        list(APPEND _kept "${_dir}")
      else()
        list(APPEND _dropped "${_dir}")
      endif()
    endforeach()
    if(_dropped)
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
      message(STATUS "ezm: ${_target}: dropped missing include dirs ${_dropped}")
    endif()
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _ezm_drop_missing_include_dirs)
