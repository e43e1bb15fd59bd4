/* The unit-test suites; each file builds one. None of them opens /dev/kvm. */
#ifndef UNIT_H
#define UNIT_H

#include <check.h>
#include <pthread.h>
#include <stdint.h>

Suite *size_suite(void);
Suite *seccomp_suite(void);
Suite *config_suite(void);
Suite *loader_suite(void);
Suite *abi_suite(void);
Suite *guestmem_suite(void);
Suite *console_suite(void);
Suite *vnet_suite(void);
Suite *vdisk_suite(void);
Suite *vdisk_dev_suite(void);
Suite *swap_suite(void);
Suite *vcpu_state_suite(void);
Suite *vcpu_cpuid_suite(void);
Suite *net_ip_suite(void);
Suite *net_tcp_suite(void);
Suite *net_fuzz_suite(void);
Suite *http_suite(void);
Suite *http_server_suite(void);
Suite *kv_store_suite(void);
Suite *kv_crash_suite(void);
Suite *kv_proto_suite(void);
Suite *kv_server_suite(void);
Suite *ctl_suite(void);
Suite *ctl_proto_suite(void);
Suite *control_suite(void);
Suite *metrics_suite(void);
Suite *progress_suite(void);
Suite *private_dir_suite(void);
Suite *sandbox_suite(void);
Suite *nat_suite(void);
Suite *ratelimit_suite(void);

/* Paths of the real guest images, from the command line (argv[1], argv[2]). */
extern const char *unit_hello_image;
extern const char *unit_misbehave_image;

/* A fresh temporary directory for this process (created once). */
const char *unit_tmpdir(void);

/* Puts the calling thread and other on two different CPUs, if it may use two, so that a
 * hostile "guest" thread really runs beside the device code under test (on one CPU the
 * race never shows). Test processes are forked per test: nothing needs undoing. */
void unit_cpus_apart(pthread_t other);

/* Returns once a thread that adds 1 to *beats at every turn of its loop is seen running (two
 * turns), so that a test's race starts with its "guest" thread already going. */
void unit_wait_running(const uint32_t *beats);

#endif
