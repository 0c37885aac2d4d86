# Runs at `cmake --install` time (packaging/CMakeLists.txt sets the CINCH_* paths): writes the
# systemd unit for the prefix installed to, and installs the example options file as the
# service's options file unless one is there (an operator's file is never overwritten).

set(prefix "${CMAKE_INSTALL_PREFIX}")
# GNUInstallDirs' rule: a /usr prefix keeps its configuration in /etc.
if(prefix STREQUAL "/usr")
  set(sysconfdir "/etc")
elseif(IS_ABSOLUTE "${CINCH_SYSCONFDIR}")
  set(sysconfdir "${CINCH_SYSCONFDIR}")
else()
  set(sysconfdir "${prefix}/${CINCH_SYSCONFDIR}")
endif()

set(CINCH_CINCHD "${prefix}/${CINCH_BINDIR}/cinchd")
set(CINCH_ENVIRONMENT_FILE "${sysconfdir}/default/cinchd")
configure_file("${CINCH_UNIT_TEMPLATE}" "${CINCH_UNIT_BUILT}" @ONLY)
file(INSTALL "${CINCH_UNIT_BUILT}" DESTINATION "${prefix}/${CINCH_UNIT_DIR}")

if(EXISTS "$ENV{DESTDIR}${CINCH_ENVIRONMENT_FILE}")
  message(STATUS "Keeping: $ENV{DESTDIR}${CINCH_ENVIRONMENT_FILE}")
else()
  file(INSTALL "${CINCH_DEFAULT_FILE}" DESTINATION "${sysconfdir}/default" RENAME cinchd)
endif()
