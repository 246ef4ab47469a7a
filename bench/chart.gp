# `make bench`: calls per second against concurrency, wdt (call_many; call at 1) and wrk.
#   gnuplot -e "datafile='concurrency.dat'; outfile='performance.png'" bench/chart.gp
if (!exists("datafile")) datafile = "build/bench/concurrency.dat"
if (!exists("outfile")) outfile = "build/bench/performance.png"
set terminal pngcairo size 900,540 noenhanced font "DejaVu Sans,11"
set output outfile
set title "Calls per second against the emulator on loopback (one client thread, one nginx worker)"
set xlabel "requests in flight (concurrency)"
set ylabel "calls per second"
set logscale x 2
set xtics (1, 2, 4, 8, 16, 32, 64)
set xrange [0.85:75]
set yrange [0:*]
set grid
set key bottom right
plot datafile using 1:3 with linespoints lw 2 pt 7 title "wrk -t1 -cN (same signed request, replayed)", \
     datafile using 1:2 with linespoints lw 2 pt 5 title "wdt client:call_many (concurrency N)", \
     datafile using 1:4 with points pt 9 ps 2 title "wdt client:call (sequential)"
