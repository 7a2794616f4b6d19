/*
 * udp-blast: send mnemic rows to a collector over UDP, at a given rate or
 * as fast as possible, for the collector's ingest benchmark.
 *
 *	udp-blast HOST PORT UUID COUNT RATE
 *
 * Sends one create_trace_run for UUID, then COUNT rows of five values, at
 * RATE rows per second (0: as fast as the socket takes them), and prints
 * "sent N in S seconds".  The rows are what a tracer sends.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct addrinfo hints;
	struct addrinfo *address;
	const char *uuid;
	long		count;
	double		rate;
	char		datagram[512];
	int			sock;
	int			length;
	long		sent = 0;
	double		start;

	if (argc != 6)
	{
		fprintf(stderr, "usage: %s HOST PORT UUID COUNT RATE\n", argv[0]);
		return 2;
	}
	uuid = argv[3];
	count = atol(argv[4]);
	rate = atof(argv[5]);

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(argv[1], argv[2], &hints, &address) != 0)
	{
		fprintf(stderr, "udp-blast: cannot resolve %s\n", argv[1]);
		return 1;
	}
	sock = socket(address->ai_family, SOCK_DGRAM, 0);
	if (sock < 0 || connect(sock, address->ai_addr, address->ai_addrlen) != 0)
	{
		perror("udp-blast");
		return 1;
	}

	length = snprintf(datagram, sizeof(datagram),
					  "{\"msg_type\": \"create_trace_run\", \"app_name\": \"udp-blast\", "
					  "\"column_names\": [\"idle\", \"count_db_connections\", \"active_tasks\", "
					  "\"live_msgs\", \"dead_msgs\"], \"uuid\": \"%s\"}", uuid);
	(void) send(sock, datagram, length, 0);
	usleep(100000);

	start = now_seconds();
	while (sent < count)
	{
		/* At a given rate, send what is due by now, then sleep a little */
		long		due = rate > 0 ? (long) ((now_seconds() - start) * rate) + 1 : count;

		if (due > count)
			due = count;
		while (sent < due)
		{
			length = snprintf(datagram, sizeof(datagram),
							  "{\"msg_type\": \"row\", \"row_data\": [%ld, 12, 3, %ld, 0.25], "
							  "\"uuid\": \"%s\"}", sent % 50, sent, uuid);
			if (send(sock, datagram, length, 0) == length)
				sent++;
		}
		if (rate > 0)
			usleep(200);
	}
	printf("sent %ld in %.3f seconds\n", sent, now_seconds() - start);
	return 0;
}
