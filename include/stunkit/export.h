/* stunkit/export.h - symbol visibility. The library is built with
 * -fvisibility=hidden; only declarations marked STUNKIT_API are exported. */
#ifndef STUNKIT_EXPORT_H
#define STUNKIT_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define STUNKIT_API __attribute__((visibility("default")))
#else
#define STUNKIT_API
#endif

#define STUNKIT_VERSION_MAJOR 0
#define STUNKIT_VERSION_MINOR 1
#define STUNKIT_VERSION_PATCH 0
#define STUNKIT_VERSION "0.1.0"

#endif
