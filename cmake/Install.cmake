# SPDX-License-Identifier: Apache-2.0
# Install rules and CPack packaging: the Debian and RPM packages
# tributary-agent and tributary-collector (scripts/package builds them;
# tests/packaging checks and installs them). Included once from the
# top-level CMakeLists.txt after every target is defined.
#
# Two install components, one package each:
#
#   agent      /usr/bin/tributary-agent, /etc/tributary/agent.yaml (conffile),
#              tributary-agent.service, tributary-agent(8),
#              /usr/share/tributary/grafana/tributary-agent.json
#   collector  /usr/bin/tributary-collector, /usr/bin/tributary (the CLI),
#              /usr/bin/tributary-replica-check, tributary-replica-check(1),
#              /usr/lib/tributary/sinks/*.so, /etc/tributary/collector.yaml
#              (conffile), tributary-collector.service, tributary-collector(8),
#              tributary(1), /usr/share/tributary/grafana/tributary-collector.json
#   sink_<name>  a sink plugin that needs libraries of its own (see below):
#              package tributary-sink-<name>
#
# The paths are the packages' (CPACK_PACKAGING_INSTALL_PREFIX /usr): the
# units start /usr/bin/..., and /etc/tributary is absolute. The state
# directories /var/lib/tributary/{agent,collector} belong to the user
# tributary and are made by the maintainer scripts, not shipped.

set(TRIB_PKG_SRC ${CMAKE_SOURCE_DIR}/packaging)
set(TRIB_PKG_OUT ${CMAKE_BINARY_DIR}/packaging)
set(TRIB_VERSION ${PROJECT_VERSION})
find_program(TRIB_GZIP gzip REQUIRED)

# ---- generated files: maintainer scripts, conffiles, compressed docs -------
set(_trib_exec_perms OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
    WORLD_READ WORLD_EXECUTE)
foreach(comp agent collector)
  set(TRIB_PKG tributary-${comp})
  set(TRIB_STATE_DIR /var/lib/tributary/${comp})
  foreach(script postinst prerm postrm)
    configure_file(${TRIB_PKG_SRC}/debian/${script}.in ${TRIB_PKG_OUT}/deb-${comp}/${script}
                   @ONLY FILE_PERMISSIONS ${_trib_exec_perms})
  endforeach()
  file(CONFIGURE OUTPUT ${TRIB_PKG_OUT}/deb-${comp}/conffiles
       CONTENT "/etc/tributary/${comp}.yaml\n")
  foreach(script pre post preun postun)
    configure_file(${TRIB_PKG_SRC}/rpm/${script}.sh.in ${TRIB_PKG_OUT}/rpm-${comp}/${script}.sh
                   @ONLY)
  endforeach()
endforeach()
configure_file(${TRIB_PKG_SRC}/debian/changelog.in ${TRIB_PKG_OUT}/changelog @ONLY)

# Debian wants changelogs and manual pages compressed with gzip -9n (no
# name or time stamp: reproducible).
file(MAKE_DIRECTORY ${TRIB_PKG_OUT}/gz)
set(_trib_gz_outputs)
foreach(src ${TRIB_PKG_OUT}/changelog ${TRIB_PKG_SRC}/man/tributary-agent.8
        ${TRIB_PKG_SRC}/man/tributary-collector.8 ${TRIB_PKG_SRC}/man/tributary.1
        ${TRIB_PKG_SRC}/man/tributary-replica-check.1)
  get_filename_component(name ${src} NAME)
  # Not VERBATIM: the redirection is the build tool's shell's.
  add_custom_command(OUTPUT ${TRIB_PKG_OUT}/gz/${name}.gz
                     COMMAND ${TRIB_GZIP} -9nc ${src} > ${TRIB_PKG_OUT}/gz/${name}.gz
                     DEPENDS ${src}
                     COMMENT "Compressing ${name}")
  list(APPEND _trib_gz_outputs ${TRIB_PKG_OUT}/gz/${name}.gz)
endforeach()
add_custom_target(trib_packaging_docs ALL DEPENDS ${_trib_gz_outputs})

# ---- install rules ----------------------------------------------------------
install(TARGETS tributary-agent RUNTIME DESTINATION bin COMPONENT agent)
install(TARGETS tributary-collector tributary tributary-replica-check RUNTIME DESTINATION bin
        COMPONENT collector)

# Sink plugins: the MODULE libraries under plugins/ built into ${TRIB_SINK_DIR}
# (test fixtures go elsewhere and are not installed).
function(trib_module_targets dir out)
  set(found)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t ${targets})
    get_target_property(type ${t} TYPE)
    get_target_property(outdir ${t} LIBRARY_OUTPUT_DIRECTORY)
    if(type STREQUAL "MODULE_LIBRARY" AND outdir STREQUAL TRIB_SINK_DIR)
      list(APPEND found ${t})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub ${subdirs})
    trib_module_targets(${sub} more)
    list(APPEND found ${more})
  endforeach()
  set(${out} ${found} PARENT_SCOPE)
endfunction()
trib_module_targets(${CMAKE_SOURCE_DIR}/plugins TRIB_SINK_TARGETS)

# A plugin that links only Tributary's own libraries ships in
# tributary-collector. One that links a library of its own (a pkg-config
# target or a plain library name: the postgres sink's libpq) gets its own
# package, tributary-sink-<name>, so the collector does not depend on it.
set(TRIB_SINK_COMPONENTS)
set(_trib_elf_collector)
foreach(t ${TRIB_SINK_TARGETS})
  get_target_property(libs ${t} LINK_LIBRARIES)
  set(own_libs OFF)
  foreach(l ${libs})
    if(l MATCHES "^PkgConfig::" OR NOT (TARGET ${l} OR l MATCHES "^[-$]"))
      set(own_libs ON)
    endif()
  endforeach()
  if(own_libs)
    get_target_property(name ${t} OUTPUT_NAME)
    set(comp sink_${name})
    list(APPEND TRIB_SINK_COMPONENTS ${comp})
    set(_trib_sink_name_${comp} ${name})
    set(_trib_elf_${comp} lib/tributary/sinks/$<TARGET_FILE_NAME:${t}>)
  else()
    set(comp collector)
    list(APPEND _trib_elf_collector lib/tributary/sinks/$<TARGET_FILE_NAME:${t}>)
  endif()
  install(TARGETS ${t} LIBRARY DESTINATION lib/tributary/sinks COMPONENT ${comp})
endforeach()
foreach(comp ${TRIB_SINK_COMPONENTS})
  install(FILES ${TRIB_PKG_SRC}/debian/copyright ${TRIB_PKG_OUT}/gz/changelog.gz
          DESTINATION share/doc/tributary-sink-${_trib_sink_name_${comp}} COMPONENT ${comp})
endforeach()

# CPack strips with a plain `strip`; Debian's dh_strip also drops the
# .comment section (compiler versions), which lintian reports as unneeded.
set(_trib_elf_agent bin/$<TARGET_FILE_NAME:tributary-agent>)
list(APPEND _trib_elf_collector bin/$<TARGET_FILE_NAME:tributary-collector>
     bin/$<TARGET_FILE_NAME:tributary> bin/$<TARGET_FILE_NAME:tributary-replica-check>)
if(CMAKE_STRIP)
  foreach(comp agent collector ${TRIB_SINK_COMPONENTS})
    install(CODE "
      if(CMAKE_INSTALL_DO_STRIP)
        foreach(f ${_trib_elf_${comp}})
          execute_process(COMMAND \"${CMAKE_STRIP}\" --remove-section=.comment
                                  \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/\${f}\"
                          RESULT_VARIABLE rc)
          if(NOT rc EQUAL 0)
            message(FATAL_ERROR \"strip --remove-section=.comment \${f} failed\")
          endif()
        endforeach()
      endif()" COMPONENT ${comp})
  endforeach()
endif()

foreach(comp agent collector)
  install(FILES ${TRIB_PKG_SRC}/conf/${comp}.yaml DESTINATION /etc/tributary COMPONENT ${comp})
  install(FILES ${TRIB_PKG_SRC}/systemd/tributary-${comp}.service
          DESTINATION lib/systemd/system COMPONENT ${comp})
  install(FILES ${TRIB_PKG_SRC}/debian/copyright ${TRIB_PKG_OUT}/gz/changelog.gz
          DESTINATION share/doc/tributary-${comp} COMPONENT ${comp})
  # The fully commented reference configuration.
  install(FILES ${CMAKE_SOURCE_DIR}/conf/${comp}.yaml
          DESTINATION share/doc/tributary-${comp}/examples COMPONENT ${comp})
  # Grafana dashboards over the daemon's Prometheus metrics (conf/grafana/), to import.
  install(FILES ${CMAKE_SOURCE_DIR}/conf/grafana/tributary-${comp}.json
          DESTINATION share/tributary/grafana COMPONENT ${comp})
endforeach()
# One node of a three-node cluster with ZooKeeper, commented.
install(FILES ${CMAKE_SOURCE_DIR}/conf/collector-cluster.yaml
        DESTINATION share/doc/tributary-collector/examples COMPONENT collector)
install(FILES ${TRIB_PKG_OUT}/gz/tributary-agent.8.gz DESTINATION share/man/man8 COMPONENT agent)
install(FILES ${TRIB_PKG_OUT}/gz/tributary-collector.8.gz DESTINATION share/man/man8
        COMPONENT collector)
install(FILES ${TRIB_PKG_OUT}/gz/tributary.1.gz ${TRIB_PKG_OUT}/gz/tributary-replica-check.1.gz
        DESTINATION share/man/man1 COMPONENT collector)

# ---- CPack --------------------------------------------------------------------
set(CPACK_PACKAGE_NAME tributary)
set(CPACK_PACKAGE_VENDOR "The Tributary authors")
set(CPACK_PACKAGE_CONTACT "Tributary developers <tributary@example.org>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPackDeb would put it before each
# package's own synopsis (the first line of CPACK_DEBIAN_<COMP>_DESCRIPTION).
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL agent collector ${TRIB_SINK_COMPONENTS})
set(CPACK_COMPONENTS_GROUPING IGNORE)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_RPM_COMPONENT_INSTALL ON)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_GENERATOR "DEB;RPM")
# CPACK_PACKAGE_FILE_NAME is ignored: DEB-DEFAULT and RPM-DEFAULT below.

set(_trib_agent_summary "Tributary agent: ships logs, syslog and metrics to Kafka brokers")
set(_trib_agent_long
    "The Tributary agent tails log files (globs, rotation by rename and\n"
    "copytruncate, multiline records), receives syslog (UDP, TCP, TLS, unix\n"
    "sockets), samples host metrics and scrapes Prometheus exporters, parses and\n"
    "filters the events and ships them as keyed JSON events to Tributary\n"
    "collectors or any Kafka cluster, at least once; what cannot be read again\n"
    "waits in a disk buffer until it is acknowledged. The packaged configuration\n"
    "ships /var/log/syslog, /var/log/*.log and host metrics to a collector on\n"
    "127.0.0.1:9092.")
set(_trib_collector_summary "Tributary collector: log broker speaking the Kafka protocol")
set(_trib_collector_long
    "The Tributary collector stores partitioned, append-only logs in Kafka's\n"
    "on-disk layout and serves them over the Apache Kafka wire protocol, so\n"
    "Kafka clients and tools work with it unchanged. It hosts the consumer\n"
    "group coordinator and the sink plugins. This package also holds the\n"
    "tributary command-line tool (topics, produce, consume, groups).")
string(CONCAT _trib_agent_long ${_trib_agent_long})
string(CONCAT _trib_collector_long ${_trib_collector_long})

# Debian: native packages (no Debian revision), dependencies from
# dpkg-shlibdeps plus adduser for the postinst.
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# Both packages create the user tributary; the agent is started after the
# collector when both are installed (the unit's After=), and works alone.
set(CPACK_DEBIAN_AGENT_PACKAGE_NAME tributary-agent)
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_NAME tributary-collector)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_AGENT_PACKAGE_SUGGESTS "tributary-collector")
set(CPACK_DEBIAN_AGENT_DESCRIPTION "${_trib_agent_summary}\n${_trib_agent_long}")
set(CPACK_DEBIAN_COLLECTOR_DESCRIPTION "${_trib_collector_summary}\n${_trib_collector_long}")
foreach(comp agent collector)
  string(TOUPPER ${comp} COMP)
  set(CPACK_DEBIAN_${COMP}_PACKAGE_CONTROL_EXTRA
      "${TRIB_PKG_OUT}/deb-${comp}/postinst;${TRIB_PKG_OUT}/deb-${comp}/prerm;${TRIB_PKG_OUT}/deb-${comp}/postrm;${TRIB_PKG_OUT}/deb-${comp}/conffiles")
endforeach()

# RPM: requires from rpm's own ELF dependency generator (AutoReq), the
# configuration as %config(noreplace), scriptlets in packaging/rpm.
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_RPM_PACKAGE_LICENSE "Apache-2.0")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_AUTOREQ ON)
# The units and the configuration name /usr/bin and /etc: not relocatable.
set(CPACK_RPM_PACKAGE_RELOCATABLE OFF)
# No /usr/lib/.build-id links: the packages hold exactly the installed files.
set(CPACK_RPM_SPEC_MORE_DEFINE "%define _build_id_links none")
# Directories owned by the base system, not by these packages.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /usr/lib/systemd /usr/lib/systemd/system /usr/share/man /usr/share/man/man1
    /usr/share/man/man8)
set(CPACK_RPM_AGENT_PACKAGE_NAME tributary-agent)
set(CPACK_RPM_COLLECTOR_PACKAGE_NAME tributary-collector)
set(CPACK_RPM_AGENT_PACKAGE_SUMMARY "${_trib_agent_summary}")
set(CPACK_RPM_COLLECTOR_PACKAGE_SUMMARY "${_trib_collector_summary}")
set(CPACK_RPM_AGENT_PACKAGE_DESCRIPTION "${_trib_agent_long}")
set(CPACK_RPM_COLLECTOR_PACKAGE_DESCRIPTION "${_trib_collector_long}")
foreach(comp agent collector)
  string(TOUPPER ${comp} COMP)
  set(CPACK_RPM_${COMP}_USER_FILELIST "%config(noreplace) /etc/tributary/${comp}.yaml")
  set(CPACK_RPM_${COMP}_PACKAGE_REQUIRES_PRE "shadow-utils")
  set(CPACK_RPM_${COMP}_PACKAGE_REQUIRES_POST "systemd")
  set(CPACK_RPM_${COMP}_PACKAGE_REQUIRES_PREUN "systemd")
  set(CPACK_RPM_${COMP}_PRE_INSTALL_SCRIPT_FILE ${TRIB_PKG_OUT}/rpm-${comp}/pre.sh)
  set(CPACK_RPM_${COMP}_POST_INSTALL_SCRIPT_FILE ${TRIB_PKG_OUT}/rpm-${comp}/post.sh)
  set(CPACK_RPM_${COMP}_PRE_UNINSTALL_SCRIPT_FILE ${TRIB_PKG_OUT}/rpm-${comp}/preun.sh)
  set(CPACK_RPM_${COMP}_POST_UNINSTALL_SCRIPT_FILE ${TRIB_PKG_OUT}/rpm-${comp}/postun.sh)
endforeach()

# Sink plugin packages: the plugin, its libraries (dpkg-shlibdeps, AutoReq)
# and the collector of the same version that loads it.
foreach(comp ${TRIB_SINK_COMPONENTS})
  string(TOUPPER ${comp} COMP)
  set(name ${_trib_sink_name_${comp}})
  set(summary "Tributary collector sink plugin: ${name}")
  set(long "The ${name} sink plugin of the Tributary collector\n"
           "(/usr/lib/tributary/sinks/${name}.so). It has its own package because\n"
           "it needs libraries the collector itself does not.")
  string(CONCAT long ${long})
  set(CPACK_DEBIAN_${COMP}_PACKAGE_NAME tributary-sink-${name})
  set(CPACK_DEBIAN_${COMP}_PACKAGE_DEPENDS "tributary-collector (= ${PROJECT_VERSION})")
  set(CPACK_DEBIAN_${COMP}_DESCRIPTION "${summary}\n${long}")
  set(CPACK_RPM_${COMP}_PACKAGE_NAME tributary-sink-${name})
  set(CPACK_RPM_${COMP}_PACKAGE_SUMMARY "${summary}")
  set(CPACK_RPM_${COMP}_PACKAGE_DESCRIPTION "${long}")
  set(CPACK_RPM_${COMP}_PACKAGE_REQUIRES
      "tributary-collector = ${PROJECT_VERSION}-${CPACK_RPM_PACKAGE_RELEASE}")
endforeach()

include(CPack)
cpack_add_component(agent DISPLAY_NAME "Tributary agent" DESCRIPTION "${_trib_agent_summary}")
cpack_add_component(collector DISPLAY_NAME "Tributary collector"
                    DESCRIPTION "${_trib_collector_summary}")
