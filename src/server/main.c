/* stunkitd - placeholder until the server lands. */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "stunkitd: the server is not implemented yet\n");
    return 1;
}
