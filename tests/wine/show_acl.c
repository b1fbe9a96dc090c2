/*
 * Prints who may open a file, for the Wine tests of shoal's owner-only
 * files (crates/cli/tests/windows_wine.rs). A test fixture, never shipped.
 *
 *   show_acl.exe PATH
 *
 * prints two lines:
 *   user SID        the SID of the user running it (its token's user)
 *   sddl SDDL       PATH's owner and DACL as an SDDL string, e.g.
 *                   O:S-1-5-21-...D:P(A;;FA;;;S-1-5-21-...)
 * and exits 0, or prints the failing call and its error code and exits 1.
 */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>

static void print_utf8(const char *label, const wchar_t *text)
{
    char buffer[4096];
    int n = WideCharToMultiByte(CP_UTF8, 0, text, -1, buffer, sizeof buffer, NULL, NULL);
    if (n == 0)
        snprintf(buffer, sizeof buffer, "(not printable)");
    printf("%s %s\n", label, buffer);
}

static int fail(const char *call, DWORD error)
{
    printf("error %s %lu\n", call, (unsigned long)error);
    return 1;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc != 2) {
        printf("usage: show_acl.exe PATH\n");
        return 2;
    }

    HANDLE token;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return fail("OpenProcessToken", GetLastError());
    BYTE user[512];
    DWORD user_len = 0;
    if (!GetTokenInformation(token, TokenUser, user, sizeof user, &user_len))
        return fail("GetTokenInformation", GetLastError());
    wchar_t *sid_text;
    if (!ConvertSidToStringSidW(((TOKEN_USER *)user)->User.Sid, &sid_text))
        return fail("ConvertSidToStringSidW", GetLastError());
    print_utf8("user", sid_text);

    PSECURITY_DESCRIPTOR descriptor;
    DWORD status = GetNamedSecurityInfoW(argv[1], SE_FILE_OBJECT,
                                         OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                                         NULL, NULL, NULL, NULL, &descriptor);
    if (status != ERROR_SUCCESS)
        return fail("GetNamedSecurityInfoW", status);
    wchar_t *sddl;
    if (!ConvertSecurityDescriptorToStringSecurityDescriptorW(
            descriptor, SDDL_REVISION_1,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &sddl, NULL))
        return fail("ConvertSecurityDescriptorToStringSecurityDescriptorW", GetLastError());
    print_utf8("sddl", sddl);
    return 0;
}
