/*
** replay.h: the corpus replay driver of the fuzz targets, for the
** -DPLUME_FUZZ_MAIN build (make unit). Each file named on the command line is
** one input to LLVMFuzzerTestOneInput; prints a TAP line per file, then
** "N passed, N failed", and exits 1 when any failed. Included last, after
** internal.h and the target's two hooks:
**   static int replay_failed(void): 1 when the input just run broke a check;
**     it clears the target's mark for the next input.
**   static int replay_done(void): frees what the target kept across inputs;
**     returns how many checks failed then.
*/
#ifndef PLUME_FUZZ_REPLAY_H
#define PLUME_FUZZ_REPLAY_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The whole file path in a new buffer of exactly its size plus a NUL, its
** size in *n; NULL when it cannot be read. */
static uint8_t *replay_read(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  long len;
  if (f == NULL)
    return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
      fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1)) != NULL) {
    if (fread(buf, 1, (size_t)len, f) == (size_t)len) {
      buf[len] = '\0';
      *n = (size_t)len;
    } else {
      free(buf);
      buf = NULL;
    }
  }
  fclose(f);
  return buf;
}

int main(int argc, char **argv) {
  int i, npassed = 0, nfailed = 0;
  for (i = 1; i < argc; i++) {
    size_t n = 0;
    uint8_t *buf = replay_read(argv[i], &n);
    if (buf == NULL) {
      printf("not ok %d - %s: cannot read\n", i, argv[i]);
      nfailed++;
      continue;
    }
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    if (replay_failed()) {
      printf("not ok %d - %s\n", i, argv[i]);
      nfailed++;
    } else {
      printf("ok %d - %s\n", i, argv[i]);
      npassed++;
    }
  }
  nfailed += replay_done();
  plume__shared_pool_drain();
  printf("%d passed, %d failed\n", npassed, nfailed);
  return nfailed != 0;
}

#endif
