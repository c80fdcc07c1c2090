// SPDX-License-Identifier: BSD-2-Clause
/*
 * The library as its users get it: `make install DESTDIR=... PREFIX=/usr`,
 * then a program outside the tree (examples/codec_migration.c, copied out)
 * built with `pkg-config --cflags --libs request-shadow` against the
 * installed copy and run; and the example as `make examples` built it
 * ($RS_EXAMPLES, default .output/examples).
 * Runs from the top directory, as `make unit-test` does.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rs_service.h"

static char dir[64];

static void setup(void)
{
	service_tmpdir(dir, sizeof(dir), "rs_install_test");
}

static void teardown(void)
{
	service_rmdir(dir);
}

TestSuite(rs_install, .init = setup, .fini = teardown);

/* Runs a shell command line; its exit code (asserting it exited). */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	cr_assert(st != -1 && WIFEXITED(st), "%s: did not exit", cmd);
	return WEXITSTATUS(st);
}

/* The codec example's output (a file's text) checked: one divergence
 * per order, each at $.total and nowhere else. */
static void assert_codec_divergences(const char *path)
{
	json_error_t e;
	json_t *arr = json_load_file(path, 0, &e), *d;
	size_t i;

	cr_assert(json_is_array(arr), "%s: %s", path, e.text);
	cr_assert_eq(json_array_size(arr), 3);
	json_array_foreach(arr, i, d) {
		json_t *body = json_object_get(d, "body");
		json_t *diffs = json_object_get(body, "diffs");

		cr_assert(json_is_true(json_object_get(body, "diverged")));
		cr_assert_eq(json_array_size(diffs), 1);
		cr_assert_str_eq(json_string_value(json_object_get(
			json_array_get(diffs, 0), "path")), "$.total");
		cr_assert(json_is_false(json_object_get(json_object_get(d,
			  "status"), "diverged")));
		cr_assert_str_eq(json_string_value(json_object_get(d, "endpoint")),
				 "GET /orders/{id}");
	}
	json_decref(arr);
}

Test(rs_install, a_program_outside_the_tree_builds_with_pkg_config_and_runs)
{
	char out[128], so[160];
	struct stat st;

	/* A plain install, whatever make runs the tests: check-asan's
	 * MAKEFLAGS would install its sanitized build, which a program built
	 * without ASan cannot load. */
	cr_assert_eq(sh("env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "
			"make -s install DESTDIR='%s/root' PREFIX=/usr "
			">'%s/make.log' 2>&1", dir, dir), 0,
		     "make install failed, see %s/make.log", dir);
	snprintf(so, sizeof(so), "%s/root/usr/lib/librequest-shadow.so.0", dir);
	cr_assert_eq(stat(so, &st), 0, "%s not installed", so);
	cr_assert_eq(sh("readelf -d '%s' | grep -q 'SONAME.*librequest-shadow.so.0'",
			so), 0, "no soname");
	cr_assert_eq(sh("test -L '%s/root/usr/lib/librequest-shadow.so' && "
			"test -f '%s/root/usr/lib/librequest-shadow.a' && "
			"test -f '%s/root/usr/include/request_shadow.h' && "
			"test -f '%s/root/usr/share/man/man3/request_shadow.3'",
			dir, dir, dir, dir), 0, "a file is missing");
	/* only the rs_ names are exported */
	cr_assert_eq(sh("nm -D --defined-only '%s' | awk '{print $3}' | "
			"grep -v '^rs_' | grep -qv '^REQUEST_SHADOW_0$'", so), 1,
		     "the .so exports more than rs_*");
	cr_assert_eq(sh("mkdir -p '%s/app' && cp examples/codec_migration.c "
			"'%s/app/main.c'", dir, dir), 0);
	cr_assert_eq(sh("cd '%s/app' && PKG_CONFIG_SYSROOT_DIR='%s/root' "
			"PKG_CONFIG_LIBDIR='%s/root/usr/lib/pkgconfig' PKG_CONFIG_PATH= "
			"cc -std=gnu11 -Wall -Werror main.c $(PKG_CONFIG_SYSROOT_DIR='%s/root' "
			"PKG_CONFIG_LIBDIR='%s/root/usr/lib/pkgconfig' "
			"pkg-config --cflags --libs request-shadow) -o app "
			">build.log 2>&1", dir, dir, dir, dir, dir), 0,
		     "the program did not build, see %s/app/build.log", dir);
	/* against the installed .so, not the tree's */
	cr_assert_eq(sh("readelf -d '%s/app/app' | grep -q 'NEEDED.*librequest-shadow.so.0'",
			dir), 0, "not linked with the shared library");
	snprintf(out, sizeof(out), "%s/app/out.json", dir);
	cr_assert_eq(sh("LD_LIBRARY_PATH='%s/root/usr/lib' '%s/app/app' >'%s' "
			"2>/dev/null", dir, dir, out), 0, "the program failed");
	cr_assert_eq(sh("LD_LIBRARY_PATH='%s/root/usr/lib' ldd '%s/app/app' | "
			"grep -q '%s/root/usr/lib/librequest-shadow.so.0'", dir, dir,
			dir), 0, "not run against the installed copy");
	assert_codec_divergences(out);
}

Test(rs_install, the_built_codec_migration_example_finds_the_total)
{
	const char *ex = getenv("RS_EXAMPLES") ? getenv("RS_EXAMPLES") :
						 ".output/examples";
	char out[128];

	cr_assert_eq(sh("test -x '%s/codec_migration'", ex), 0,
		     "%s/codec_migration not built (make examples)", ex);
	snprintf(out, sizeof(out), "%s/out.json", dir);
	cr_assert_eq(sh("'%s/codec_migration' >'%s' 2>/dev/null", ex, out), 0);
	assert_codec_divergences(out);
}
