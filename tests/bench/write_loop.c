/* write(2) of one byte to /dev/null, N times: the untracked-fd fast path of the send hooks. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 100000;
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	char byte = 'x';
	for (long i = 0; i < count; i++)
		if (write(fd, &byte, 1) != 1)
			return 1;
	return 0;
}
