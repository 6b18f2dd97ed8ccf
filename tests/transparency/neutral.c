/* The control's stand-in for the shim in a sanitized build (tests/transparency/meson.build): an
 * empty library built with the same sanitizer, preloaded after the runtime as the shim would be.
 * With the TSan runtime alone, which then starts at the program's first intercepted call, bash
 * and dash crash at start (exit 139); with an instrumented library loaded they run, so the
 * control and the shim's run differ only in the shim's code. */
int dnsaware_transparency_neutral(void);

int dnsaware_transparency_neutral(void)
{
	return 0;
}
