/* The program tests/wrapper/test_wrapper.sh runs through tools/dnsaware, built three ways: dynamic,
 * static (refused), and dynamic with a Go build-info section added (refused as a Go binary).
 * Prints "hello-ran" and its arguments, one line, so a test can tell it ran and got them untouched. */
#include <stdio.h>

int main(int argc, char **argv)
{
	fputs("hello-ran", stdout);
	for (int i = 1; i < argc; i++)
		printf(" [%s]", argv[i]);
	putchar('\n');
	return 0;
}
