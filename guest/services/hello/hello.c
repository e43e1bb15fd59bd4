/* hello: greets, then prints its arguments one per line. */
#include <stdio.h>

int main(int argc, char **argv)
{
	printf("Hello from %s on Denali!\n", argv[0]);
	for (int i = 1; i < argc; i++)
		printf("arg %d: %s\n", i, argv[i]);
	return 0;
}
