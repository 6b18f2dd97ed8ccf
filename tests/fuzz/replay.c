/* Replays files through a fuzz target's LLVMFuzzerTestOneInput without libFuzzer, with the normal
 * compiler: every run of the test suite checks the seed corpus and every saved regression input
 * against the target's invariants in a few seconds. Arguments: files or directories (every
 * regular file in them, in name order; a directory that does not exist is skipped, so an empty
 * regressions/ need not be kept in git). Exit status 0 when every input ran; a broken invariant
 * aborts, after the input's path was printed. No input at all is a failure (a wrong path). */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

/* Larger inputs than libFuzzer is ever run with are a mistake in the corpus, not an input. */
#define INPUT_MAX (1024 * 1024)

static int replay_file(const char *path, unsigned *count)
{
	int status = 1;
	uint8_t *data = malloc(INPUT_MAX);
	FILE *file = fopen(path, "rb");
	size_t size;

	if (data == NULL || file == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		goto done;
	}
	size = fread(data, 1, INPUT_MAX, file);
	if (ferror(file) || !feof(file)) {
		fprintf(stderr, "replay: %s: unreadable or larger than %d bytes\n", path, INPUT_MAX);
		goto done;
	}
	printf("replay: %s (%zu bytes)\n", path, size);
	fflush(stdout);
	/* A copy of exactly the input's size, as libFuzzer passes it: reads past the end are caught by
	 * AddressSanitizer when the replay is built with it. */
	uint8_t *exact = malloc(size > 0 ? size : 1);
	if (exact == NULL)
		goto done;
	if (size > 0)
		memcpy(exact, data, size);
	LLVMFuzzerTestOneInput(exact, size);
	free(exact);
	(*count)++;
	status = 0;
done:
	if (file != NULL)
		fclose(file);
	free(data);
	return status;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay_directory(const char *dir, unsigned *count)
{
	struct dirent **entries = NULL;
	int n = scandir(dir, &entries, NULL, by_name);
	int status = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof path, "%s/%s", dir, entries[i]->d_name);
		if (entries[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			status |= replay_file(path, count);
		free(entries[i]);
	}
	free(entries);
	return status;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int status = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0) {
			if (errno == ENOENT)
				continue; /* an empty regressions/ directory is not in git */
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			status = 1;
		} else if (S_ISDIR(st.st_mode)) {
			status |= replay_directory(argv[i], &count);
		} else {
			status |= replay_file(argv[i], &count);
		}
	}
	/* No input at all means a wrong path, not a clean corpus. */
	if (count == 0)
		status = 1;
	printf("replay: %u inputs, %s\n", count, status == 0 ? "all passed" : "some could not be read");
	return status;
}
