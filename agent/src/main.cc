#include "daemon.h"

int main(int argc, char** argv) { return loyalty::agent::RunDaemon(argc, argv); }
