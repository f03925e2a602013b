/*
** errors.c: names and texts of error codes, Plume's (PLUME_ERRNO_MAP) and
** libuv's.
*/
#include "internal.h"

const char *plume_strerror(int err) {
  switch (err) {
#define XX(name, code, text)                                                   \
  case code:                                                                   \
    return text;
    PLUME_ERRNO_MAP(XX)
#undef XX
  default:
    return uv_strerror(err);
  }
}

const char *plume_err_name(int err) {
  switch (err) {
#define XX(name, code, text)                                                   \
  case code:                                                                   \
    return #name;
    PLUME_ERRNO_MAP(XX)
#undef XX
  default:
    return uv_err_name(err);
  }
}

const char *plume_version(void) {
  return PLUME_VERSION_STRING;
}
