# What lets other projects link libpeerscope after `cmake --install`: peerscope.pc for
# pkg-config and a CMake package, find_package(peerscope CONFIG) giving peerscope::peerscope
# (shared) and peerscope::peerscope_static. Included by the root CMakeLists.txt after src/.
include(CMakePackageConfigHelpers)

set(PS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/peerscope)
set(PS_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(TARGETS peerscope peerscope_static EXPORT peerscopeTargets
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT peerscopeTargets NAMESPACE peerscope:: DESTINATION ${PS_CMAKE_DIR})

# The static library's dependencies, for both files (the shared one carries its own).
set(PS_PC_REQUIRES_PRIVATE jansson)
if(PS_WITH_CURL)
  list(APPEND PS_PC_REQUIRES_PRIVATE libcurl)
endif()
if(PS_WITH_ARCHIVE)
  list(APPEND PS_PC_REQUIRES_PRIVATE libarchive)
endif()
list(JOIN PS_PC_REQUIRES_PRIVATE ", " PS_PC_REQUIRES_PRIVATE)
set(PS_PC_LIBS_PRIVATE "-pthread -lm")
foreach(lib ${CMAKE_DL_LIBS})
  string(APPEND PS_PC_LIBS_PRIVATE " -l${lib}")
endforeach()

# ${pcfiledir}-relative paths, so `cmake --install --prefix` (or DESTDIR) anywhere works.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(PS_PC_PREFIX ${CMAKE_INSTALL_PREFIX}) # given absolute: use them as they are
  set(PS_PC_LIBDIR ${CMAKE_INSTALL_FULL_LIBDIR})
  set(PS_PC_INCLUDEDIR ${CMAKE_INSTALL_FULL_INCLUDEDIR})
else()
  file(RELATIVE_PATH to_prefix /p/${PS_PC_DIR} /p) # "../.."
  set(PS_PC_PREFIX "\${pcfiledir}/${to_prefix}")
  set(PS_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(PS_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/peerscope.pc.in ${CMAKE_BINARY_DIR}/pkg/peerscope.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/pkg/peerscope.pc DESTINATION ${PS_PC_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/peerscopeConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/pkg/peerscopeConfig.cmake
                              INSTALL_DESTINATION ${PS_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/pkg/peerscopeConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/pkg/peerscopeConfig.cmake
              ${CMAKE_BINARY_DIR}/pkg/peerscopeConfigVersion.cmake DESTINATION ${PS_CMAKE_DIR})
