/* ignterm: ignores SIGTERM, says "ready", sleeps until killed. */
#include "common.h"

int main(void)
{
    signal(SIGTERM, SIG_IGN);
    say("ready\n");
    for (;;)
        pause();
}
