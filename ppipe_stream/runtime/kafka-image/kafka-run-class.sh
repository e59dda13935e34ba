#!/bin/sh
# java with Kafka's jars on the class path: kafka-run-class.sh CLASS [ARGS...]
# (KAFKA_HEAP_OPTS, KAFKA_OPTS as in Apache Kafka's own scripts).
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -XX:+UseG1GC -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties ${KAFKA_OPTS:-} \
  -cp '/opt/kafka/libs/*' "$@"
