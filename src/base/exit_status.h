/* denali-run's own exit statuses; a guest's exit status (0-DN_EXIT_STATUS_MAX) passes through. */
#ifndef BASE_EXIT_STATUS_H
#define BASE_EXIT_STATUS_H

/* Several services ran and at least one did not exit with status 0. */
#define DENALI_EXIT_SOME_FAILED 1
/* Bad options, service file or image: nothing was started. */
#define DENALI_EXIT_USAGE 2
/* --timeout expired. */
#define DENALI_EXIT_TIMEOUT 124
/* The host failed: no KVM, an ioctl, the state directory. */
#define DENALI_EXIT_HOST 125
/* The monitor stopped the service: abort, fault, broken contract. */
#define DENALI_EXIT_STOPPED 126

#endif
