# Install-time part of the installation: the files that name the installed paths, made for
# the prefix being installed to (CMAKE_INSTALL_PREFIX here is the install's, not the build's).
# /usr is the system layout (/etc, /var); any other prefix keeps everything below it.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(etc "/etc")
  set(var "/var")
else()
  set(etc "${CMAKE_INSTALL_PREFIX}/etc")
  set(var "${CMAKE_INSTALL_PREFIX}/var")
endif()
set(VIGIL_BINDIR "${CMAKE_INSTALL_PREFIX}/${VIGIL_REL_BINDIR}")
set(VIGIL_DATADIR "${CMAKE_INSTALL_PREFIX}/${VIGIL_REL_DATADIR}/vigil")
set(VIGIL_DOCDIR "${CMAKE_INSTALL_PREFIX}/${VIGIL_REL_DOCDIR}")
set(VIGIL_SYSCONFDIR "${etc}/vigil")
set(VIGIL_LOGROTATEDIR "${etc}/logrotate.d")
set(VIGIL_STATEDIR "${var}/lib/vigil")
set(VIGIL_CACHEDIR "${var}/cache/vigil")
set(VIGIL_LOGDIR "${var}/log/vigil")

# systemd makes /var/lib/vigil and friends itself; with another prefix the folders are below it.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  string(CONCAT VIGIL_SYSTEMD_DIRS "StateDirectory=vigil\nStateDirectoryMode=0750\nCacheDirectory=vigil\n"
         "CacheDirectoryMode=0750\nLogsDirectory=vigil\nLogsDirectoryMode=0750\nConfigurationDirectory=vigil\n")
else()
  set(VIGIL_SYSTEMD_DIRS "")
endif()
foreach(f vigil.service vigil.toml logrotate vigil-setup)
  configure_file("${VIGIL_DEPLOY_SRC}/${f}.in" "${VIGIL_DEPLOY_GEN}/${f}" @ONLY)
endforeach()

file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE FILES "${VIGIL_DEPLOY_GEN}/vigil.service")
file(INSTALL DESTINATION "${VIGIL_BINDIR}" TYPE PROGRAM FILES "${VIGIL_DEPLOY_GEN}/vigil-setup")
file(INSTALL DESTINATION "${VIGIL_LOGROTATEDIR}" TYPE FILE RENAME vigil FILES "${VIGIL_DEPLOY_GEN}/logrotate")
# An administrator's configuration is never replaced by `make install`: the new one lands
# beside it as vigil.toml.new (the package's conffile handling does the same through dpkg).
if(EXISTS "$ENV{DESTDIR}${VIGIL_SYSCONFDIR}/vigil.toml")
  message(STATUS "Keeping $ENV{DESTDIR}${VIGIL_SYSCONFDIR}/vigil.toml; the installed default is vigil.toml.new")
  file(INSTALL DESTINATION "${VIGIL_SYSCONFDIR}" TYPE FILE RENAME vigil.toml.new FILES "${VIGIL_DEPLOY_GEN}/vigil.toml")
else()
  file(INSTALL DESTINATION "${VIGIL_SYSCONFDIR}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
       FILES "${VIGIL_DEPLOY_GEN}/vigil.toml")
endif()
# The state, cache and log folders are made, owned by the vigil user, by the package's postinst
# or by vigil-setup (and by systemd: StateDirectory= and friends in the unit).
