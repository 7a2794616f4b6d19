/*
 * sanitizer-init.c
 *		Initialize the AddressSanitizer runtime before any library's constructor.
 *
 * test/run --sanitize preloads the sanitizer runtimes into the stock server,
 * which is not built with them.  AddressSanitizer initializes itself at the
 * first malloc() it intercepts; in the server that is in the constructor of
 * libgpg-error (linked through libsystemd), inside bindtextdomain(), which
 * holds glibc's gettext lock, and the runtime's initialization takes that
 * lock again through dlerror(): the server hangs before main().  Built with
 * -z initfirst and preloaded after the runtimes, this library's constructor
 * runs before every other library's and makes that first malloc() here.
 */
#include <stdlib.h>

static void __attribute__((constructor))
sanitizer_init(void)
{
	free(malloc(1));
}
